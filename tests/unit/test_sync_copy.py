"""The SyncOperation copy the aggregate cache hands out on every load."""

from __future__ import annotations


def test_a_sync_copy_is_independent_and_equal() -> None:
    """SyncOperation's own __deepcopy__ (the cache's hand-out) copies every file record."""
    import copy

    from fgd_core.domain.sync_operation import SyncOperation

    sync = SyncOperation(fabric_id=1, correlation_id="c", trigger="manual", options={})
    sync.begin_stage("validation")
    sync.complete_stage("validation", {})
    sync.begin_stage("discovery")
    for f in ("a.yaml", "b.yaml"):
        sync.discover_file(f"raw/{f}", 10, "ab" * 20)
    sync.complete_stage("discovery", {"total_files": 2})
    sync.begin_stage("file_ingestion")
    sync.process_file("raw/a.yaml", documents_extracted=1, target_files=["m/a"],
                      processing_time=0.1)
    sync.fail_file("raw/b.yaml", 2, [{"code": "FGD_2001", "message": "bad"}], claimed=["m/b"])
    clone = copy.deepcopy(sync)
    assert clone.__dict__ == sync.__dict__ and clone is not sync
    clone.files["raw/a.yaml"]["target_files"].append("m/x")
    clone.files["raw/b.yaml"]["claimed"].append("m/y")
    clone.files["raw/b.yaml"]["validation_errors"][0]["message"] = "changed"
    clone.errors.clear()
    assert sync.files["raw/a.yaml"]["target_files"] == ["m/a"]
    assert sync.files["raw/b.yaml"]["claimed"] == ["m/b"]
    assert sync.files["raw/b.yaml"]["validation_errors"][0]["message"] == "bad"
    assert sync.errors
