"""Directory operations against real git repositories (bare repo, git CLI to check results)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.git_repo import GitRemote, Snapshot
from fgd_core.application.directory import ISSUES, REPAIRABLE, validate_directory
from fgd_core.application.directory_files import list_files
from fgd_core.application.directory_repair import SAMPLE_TEXT, initialize_changes, repair_changes
from fgd_core.application.manifest import (
    LastSync,
    Manifest,
    metadata_changes,
    parse_manifest,
    render_manifest,
    render_provenance,
)
from fgd_core.errors import DirectoryInitializationError, FGDErrorCodes, ValidationError
from fgd_core.ingestion.plan import IngestionRules, RawFile, plan_sync
from fgd_core.ingestion.resources import validate_resource
from fgd_core.ingestion.yaml_safe import load_documents
from tests.gitserver import git, init_bare, seed_repo
from tests.paths import HEDGEHOG_FIXTURES

AUTHOR = "FGD Sync <fgd@example.com>"
FIXTURES = HEDGEHOG_FIXTURES
VPC = b"""\
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: vpc-a
spec:
  subnets:
    default:
      subnet: 10.0.1.0/24
      vlan: 1001
"""
MANAGED_VPC = b"""\
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: vpc-b
  namespace: default
spec:
  subnets:
    default:
      subnet: 10.0.2.0/24
      vlan: 1002
"""


def manifest_bytes(**kw: Any) -> bytes:
    m = Manifest.for_fabric(7, "lab", "gitops")
    return render_manifest(Manifest(**{**vars(m), **kw}))


GOOD = {
    "README.md": b"# fabric repo\n",
    "gitops/raw/README.md": b"drop files here\n",
    "gitops/raw/new.yaml": VPC,
    "gitops/raw/old.yaml.archived": VPC,
    "gitops/managed/vpcs/vpc-b.yaml": MANAGED_VPC,
    "gitops/managed/connections/.gitkeep": b"",
    "gitops/managed/switches/.gitkeep": b"",
    "gitops/.hnp/manifest.yaml": manifest_bytes(
        last_sync=LastSync("s0", "2025-08-02T09:00:00Z", None)
    ),
    "gitops/.hnp/provenance.json": b"{}\n",
}


class Repo:
    """A bare repository plus a GitRemote on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.remote = GitRemote(path)

    def snap(self) -> Snapshot:
        return self.remote.fetch("main")

    def apply(self, changes: Mapping[str, bytes | None], message: str = "fgd") -> Snapshot:
        snap = self.snap()
        sha = self.remote.commit(snap, changes, message, AUTHOR, timestamp=1_754_125_200)
        self.remote.push(sha, "main", snap.head)
        return self.snap()

    def tree(self) -> dict[str, str]:
        """path -> blob id, read with the git CLI."""
        try:
            out = git("-C", self.path, "ls-tree", "-r", "main")
        except AssertionError:
            return {}
        rows = (line.split(None, 3) for line in out.splitlines())
        return {path: sha for _mode, _type, sha, path in rows}

    def show(self, path: str) -> bytes:
        return git("-C", self.path, "show", f"main:{path}").encode()

    def commits(self) -> int:
        return int(git("-C", self.path, "rev-list", "--count", "main").strip())


@pytest.fixture
def empty(tmp_path: Path) -> Repo:
    return Repo(init_bare(tmp_path / "fabric.git"))


def make_repo(tmp_path: Path, files: dict[str, bytes], **kw: Any) -> Repo:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, files, **kw)
    return Repo(bare)


def without(files: dict[str, bytes], *prefixes: str) -> dict[str, bytes]:
    return {p: c for p, c in files.items() if not p.startswith(prefixes)}


def names(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(i["issue"], i["path"], i["severity"]) for i in report["issues"]]


# ------------------------------------------------------------------------------ validate


def test_validate_missing_branch(empty: Repo) -> None:
    report = validate_directory(empty.snap(), "gitops")
    assert names(report) == [("missing_gitops_dir", "/gitops", "error")]
    assert report["valid"] is False
    assert report["repairs_needed"] == ["missing_gitops_dir"]
    assert report["directory_stats"] == {"raw_files": 0, "managed_files": 0}
    assert report["structure"] == {
        "raw": {"exists": False, "file_count": 0, "pending_files": 0},
        "managed": {"exists": False, "file_count": 0, "subdirectories": []},
        "metadata": {"exists": False, "manifest_valid": False, "last_updated": None},
    }


def test_validate_repo_without_gitops_dir(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"README.md": b"hi\n"})
    assert names(validate_directory(repo.snap(), "gitops")) == [
        ("missing_gitops_dir", "/gitops", "error")
    ]


def test_validate_good_layout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, GOOD)
    report = validate_directory(repo.snap(), "gitops")
    assert report == {
        "valid": True,
        "issues": [],
        "structure": {
            "raw": {"exists": True, "file_count": 3, "pending_files": 1},
            "managed": {
                "exists": True,
                "file_count": 1,
                "subdirectories": ["connections", "switches", "vpcs"],
            },
            "metadata": {
                "exists": True,
                "manifest_valid": True,
                "last_updated": "2025-08-02T09:00:00Z",
            },
        },
        "repairs_needed": [],
        "directory_stats": {"raw_files": 3, "managed_files": 1},
    }


def test_validate_nested_gitops_dir(tmp_path: Path) -> None:
    files = {p.replace("gitops/", "fabrics/lab/gitops/", 1): c for p, c in GOOD.items()}
    repo = make_repo(tmp_path, files)
    assert validate_directory(repo.snap(), "/fabrics/lab/gitops/")["valid"] is True
    assert names(validate_directory(repo.snap(), "gitops"))[0][0] == "missing_gitops_dir"


BAD_MANIFEST = b"version: '1'\nfabric_id: nope\n"

CASES: dict[str, tuple[dict[str, bytes], list[tuple[str, str, str]]]] = {
    "raw_is_file": (
        {**without(GOOD, "gitops/raw/"), "gitops/raw": b"oops\n"},
        [("raw_is_file", "/gitops/raw", "error")],
    ),
    "missing_raw_dir": (
        without(GOOD, "gitops/raw/"),
        [("missing_raw_dir", "/gitops/raw", "error")],
    ),
    "missing_managed_dir": (
        without(GOOD, "gitops/managed/"),
        [("missing_managed_dir", "/gitops/managed", "error")],
    ),
    "managed_is_file": (
        {**without(GOOD, "gitops/managed/"), "gitops/managed": b"x"},
        [("managed_is_file", "/gitops/managed", "error")],
    ),
    # A VPC-only fabric: the sync creates a kind's directory when it first writes one.
    "kind_dirs_created_on_demand": (
        without(GOOD, "gitops/managed/connections/", "gitops/managed/switches/"),
        [],
    ),
    "unknown_managed": (
        {**GOOD, "gitops/managed/gateways/gw.yaml": b"x", "gitops/managed/stray.yaml": b"x"},
        [
            ("unknown_managed_file", "/gitops/managed/stray.yaml", "warning"),
            ("unknown_managed_dir", "/gitops/managed/gateways", "warning"),
        ],
    ),
    "missing_metadata_dir": (
        without(GOOD, "gitops/.hnp/"),
        [("missing_metadata_dir", "/gitops/.hnp", "error")],
    ),
    "metadata_is_file": (
        {**without(GOOD, "gitops/.hnp/"), "gitops/.hnp": b"x"},
        [("metadata_is_file", "/gitops/.hnp", "error")],
    ),
    "missing_manifest": (
        without(GOOD, "gitops/.hnp/manifest.yaml"),
        [("missing_manifest", "/gitops/.hnp/manifest.yaml", "error")],
    ),
    "invalid_manifest": (
        {**GOOD, "gitops/.hnp/manifest.yaml": BAD_MANIFEST},
        [("invalid_manifest", "/gitops/.hnp/manifest.yaml", "error")],
    ),
    "invalid_provenance": (
        {**GOOD, "gitops/.hnp/provenance.json": b"{"},
        [("invalid_provenance", "/gitops/.hnp/provenance.json", "warning")],
    ),
    "unsupported_file_in_raw": (
        {**GOOD, "gitops/raw/vpc.json": b"{}", "gitops/raw/notes.txt": b"x"},
        [
            ("unsupported_file_in_raw", "/gitops/raw/notes.txt", "error"),
            ("unsupported_file_in_raw", "/gitops/raw/vpc.json", "error"),
        ],
    ),
    "gitops_is_file": (
        {"gitops": b"not a directory\n"},
        [("gitops_is_file", "/gitops", "error")],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_each_issue(tmp_path: Path, case: str) -> None:
    files, expected = CASES[case]
    repo = make_repo(tmp_path, files)
    report = validate_directory(repo.snap(), "gitops")
    assert names(report) == expected
    assert report["valid"] is not any(sev == "error" for *_, sev in expected)
    assert report["repairs_needed"] == list(
        dict.fromkeys(n for n, *_ in expected if n in REPAIRABLE)
    )
    assert all(i["message"] and i["issue"] in ISSUES for i in report["issues"])


def test_validate_symlink_in_raw(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, GOOD, symlinks={"gitops/raw/link.yaml": "/etc/passwd"})
    report = validate_directory(repo.snap(), "gitops")
    assert names(report) == [("symlink_in_raw", "/gitops/raw/link.yaml", "error")]
    assert report["structure"]["raw"]["pending_files"] == 1  # the symlink is not pending


def test_lenient_mode_downgrades_subdirs_and_unsupported_files(tmp_path: Path) -> None:
    files = {**without(GOOD, "gitops/managed/switches/"), "gitops/raw/vpc.json": b"{}"}
    repo = make_repo(tmp_path, files)
    subs = ("vpcs", "switches", "docs")  # docs/ is no kind's: nothing creates it on demand
    strict = validate_directory(repo.snap(), "gitops", required_subdirs=subs)
    lenient = validate_directory(repo.snap(), "gitops", validation_mode="lenient",
                                 required_subdirs=subs)
    assert [(n, p) for n, p, _ in names(strict)] == [
        ("unsupported_file_in_raw", "/gitops/raw/vpc.json"),
        ("missing_subdir", "/gitops/managed/docs")]
    assert [s for *_, s in names(strict)] == ["error", "error"]
    assert [s for *_, s in names(lenient)] == ["warning", "warning"]
    assert (strict["valid"], lenient["valid"]) == (False, True)
    # required_subdirs is configuration
    report = validate_directory(repo.snap(), "gitops", required_subdirs=("vpcs",))
    assert [n for n, *_ in names(report)] == ["unsupported_file_in_raw"]


def test_validate_rejects_bad_arguments(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, GOOD)
    for kwargs in ({"validation_mode": "loose"}, {"required_subdirs": ("../x",)}):
        with pytest.raises(ValidationError) as info:
            validate_directory(repo.snap(), "gitops", **kwargs)  # type: ignore[arg-type]
        assert info.value.code == FGDErrorCodes.VALIDATION_FAILED
    with pytest.raises(ValidationError):
        validate_directory(repo.snap(), "../gitops")


# ---------------------------------------------------------------------------- initialize


def test_initialize_empty_repo_then_validate(empty: Repo) -> None:
    changes, response = initialize_changes(empty.snap(), "gitops", 7, "lab")
    assert response == {
        "success": True,
        "initialized": True,
        "directories_created": [
            "/gitops",
            "/gitops/raw",
            "/gitops/managed",
            "/gitops/managed/vpcs",
            "/gitops/managed/connections",
            "/gitops/managed/switches",
            "/gitops/.hnp",
        ],
        "files_created": [
            "/gitops/.hnp/manifest.yaml",
            "/gitops/.hnp/provenance.json",
            "/gitops/raw/README.md",
            "/gitops/raw/example-vpc.yaml.sample",
        ],
    }
    snap = empty.apply(changes, "initialize")  # a root commit: the branch did not exist
    assert set(empty.tree()) == {
        "gitops/.hnp/manifest.yaml",
        "gitops/.hnp/provenance.json",
        "gitops/raw/README.md",
        "gitops/raw/example-vpc.yaml.sample",
        "gitops/managed/vpcs/.gitkeep",
        "gitops/managed/connections/.gitkeep",
        "gitops/managed/switches/.gitkeep",
    }
    manifest = parse_manifest(empty.show("gitops/.hnp/manifest.yaml"))
    assert (manifest.fabric_id, manifest.fabric_name, manifest.last_sync) == (7, "lab", None)
    assert empty.show("gitops/.hnp/provenance.json") == b"{}\n"
    report = validate_directory(snap, "gitops")
    assert report["valid"] is True and report["issues"] == []
    # The sample is one valid VPC, but nothing is pending: a sample is never ingested.
    assert report["structure"]["raw"]["pending_files"] == 0
    [doc] = load_documents(SAMPLE_TEXT.encode())
    assert validate_resource(doc.data).name == "example-vpc"
    listed = list_files(snap, "gitops", directory="raw")
    assert [(f["path"], f["resource_count"]) for f in listed["files"]] == [
        ("/gitops/raw/README.md", 0),
        ("/gitops/raw/example-vpc.yaml.sample", 0),
    ]


def test_initialize_twice_changes_nothing(empty: Repo) -> None:
    changes, _ = initialize_changes(empty.snap(), "gitops", 7, "lab", create_samples=False)
    snap = empty.apply(changes)
    assert "gitops/raw/example-vpc.yaml" not in empty.tree()
    head, count = snap.head, empty.commits()
    again, response = initialize_changes(snap, "gitops", 7, "lab")
    assert again == {}
    assert response == {
        "success": True,
        "initialized": False,
        "directories_created": [],
        "files_created": [],
    }
    assert empty.remote.commit(snap, again, "noop", AUTHOR) == head
    assert empty.commits() == count


def test_force_never_loses_raw_or_managed_files(tmp_path: Path) -> None:
    files = {
        **GOOD,
        "gitops/raw/README.md": b"our own README\n",
        "gitops/managed/vpcs/.gitkeep": b"precious?\n",
        "gitops/.hnp/manifest.yaml": manifest_bytes(
            fabric_name="old name", last_sync=LastSync("s9", "2025-01-01T00:00:00Z", "ab" * 20)
        ),
    }
    files = without(files, "gitops/managed/switches/")
    repo = make_repo(tmp_path, files)
    before = repo.tree()
    changes, response = initialize_changes(repo.snap(), "gitops", 7, "new name", force=True)
    touched = {p for p in changes if p.startswith(("gitops/raw/", "gitops/managed/"))}
    assert touched == {"gitops/managed/switches/.gitkeep"}  # only the missing piece
    assert response["initialized"] is True
    assert response["directories_created"] == ["/gitops/managed/switches"]
    assert response["files_created"] == []  # the manifest is rewritten, not created
    repo.apply(changes)
    after = repo.tree()
    for path, blob in before.items():
        if path != "gitops/.hnp/manifest.yaml":
            assert after[path] == blob, path
    manifest = parse_manifest(repo.show("gitops/.hnp/manifest.yaml"))
    assert manifest.fabric_name == "new name"
    assert manifest.last_sync == LastSync("s9", "2025-01-01T00:00:00Z", "ab" * 20)
    assert "gitops/raw/example-vpc.yaml" not in after  # raw already held YAML: no sample


def test_force_keeps_a_broken_manifest(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {**GOOD, "gitops/.hnp/manifest.yaml": BAD_MANIFEST})
    changes, response = initialize_changes(repo.snap(), "gitops", 7, "lab", force=True)
    assert response["files_created"] == ["/gitops/.hnp/manifest.yaml.broken"]
    snap = repo.apply(changes)
    assert repo.show("gitops/.hnp/manifest.yaml.broken") == BAD_MANIFEST
    assert validate_directory(snap, "gitops")["valid"] is True


def test_initialize_keeps_existing_layout_without_manifest(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, without(GOOD, "gitops/.hnp/"))
    changes, response = initialize_changes(repo.snap(), "gitops", 7, "lab")
    assert set(changes) == {"gitops/.hnp/manifest.yaml", "gitops/.hnp/provenance.json"}
    assert response["directories_created"] == ["/gitops/.hnp"]
    assert validate_directory(repo.apply(changes), "gitops")["valid"] is True


@pytest.mark.parametrize(
    "files",
    [
        {"gitops": b"a file\n"},
        {"fabrics": b"a file\n"},
        {"gitops/raw": b"a file\n"},
        {"gitops/managed/vpcs": b"a file\n"},
    ],
)
def test_initialize_over_a_file_is_fgd_2003(tmp_path: Path, files: dict[str, bytes]) -> None:
    repo = make_repo(tmp_path, files)
    where = "fabrics/lab/gitops" if "fabrics" in files else "gitops"
    with pytest.raises(DirectoryInitializationError) as info:
        initialize_changes(repo.snap(), where, 7, "lab")
    assert info.value.code == FGDErrorCodes.DIRECTORY_INITIALIZATION_FAILED


# -------------------------------------------------------------------------------- repair


REPAIRABLE_CASES = [
    "missing_raw_dir",
    "missing_managed_dir",
    "kind_dirs_created_on_demand",
    "missing_metadata_dir",
    "missing_manifest",
    "invalid_manifest",
    "invalid_provenance",
]


@pytest.mark.parametrize("case", REPAIRABLE_CASES)
def test_repair_each_repairable_issue(tmp_path: Path, case: str) -> None:
    files, expected = CASES[case]
    repo = make_repo(tmp_path, files)
    before = repo.tree()
    changes, response = repair_changes(repo.snap(), "gitops", 7, "lab")
    assert response["success"] is True and response["remaining_issues"] == []
    assert [r["issue"] for r in response["repairs_made"]] == [n for n, *_ in expected]
    assert [r["path"] for r in response["repairs_made"]] == [p for _, p, _ in expected]
    snap = repo.apply(changes, "repair")
    after = repo.tree()
    for path in before:  # nothing deleted; only metadata may be rewritten
        assert path in after
        if not path.startswith("gitops/.hnp/"):
            assert after[path] == before[path]
    assert validate_directory(snap, "gitops")["issues"] == []
    again, response = repair_changes(snap, "gitops", 7, "lab")
    assert again == {} and response["repairs_made"] == []


def test_repair_keeps_broken_manifest_for_a_human(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {**GOOD, "gitops/.hnp/manifest.yaml": BAD_MANIFEST})
    changes, response = repair_changes(repo.snap(), "gitops", 7, "lab")
    assert response["repairs_made"] == [
        {
            "issue": "invalid_manifest",
            "action": "recreated_manifest",
            "path": "/gitops/.hnp/manifest.yaml",
            "kept_as": "/gitops/.hnp/manifest.yaml.broken",
        }
    ]
    repo.apply(changes)
    assert repo.show("gitops/.hnp/manifest.yaml.broken") == BAD_MANIFEST
    assert parse_manifest(repo.show("gitops/.hnp/manifest.yaml")).fabric_id == 7


def test_repair_missing_gitops_dir_initializes_without_samples(empty: Repo) -> None:
    changes, response = repair_changes(empty.snap(), "gitops", 7, "lab")
    assert response["repairs_made"] == [
        {"issue": "missing_gitops_dir", "action": "initialized_directory", "path": "/gitops"}
    ]
    snap = empty.apply(changes)
    assert "gitops/raw/example-vpc.yaml" not in empty.tree()
    assert validate_directory(snap, "gitops")["valid"] is True


def test_repair_leaves_what_it_cannot_fix(tmp_path: Path) -> None:
    files = {
        **without(GOOD, "gitops/managed/switches/"),
        "gitops/raw/vpc.json": b"{}",
        "gitops/managed/gateways/gw.yaml": b"x",
    }
    repo = make_repo(tmp_path, files, symlinks={"gitops/raw/link.yaml": "../../etc"})
    before = repo.tree()
    changes, response = repair_changes(
        repo.snap(), "gitops", 7, "lab", issues=["missing_raw_dir", "invalid_permissions"],
        required_subdirs=("vpcs", "switches", "docs"),
    )
    assert changes == {"gitops/managed/docs/.gitkeep": b""}  # switches/: created on demand
    assert response["repairs_made"] == [
        {
            "issue": "missing_subdir",
            "action": "created_directory",
            "path": "/gitops/managed/docs",
        }
    ]
    remaining = {(i["issue"], i["path"], i["severity"]) for i in response["remaining_issues"]}
    assert remaining == {
        ("symlink_in_raw", "/gitops/raw/link.yaml", "error"),
        ("unsupported_file_in_raw", "/gitops/raw/vpc.json", "error"),
        ("unknown_managed_dir", "/gitops/managed/gateways", "warning"),
        ("invalid_permissions", None, "warning"),
    }
    assert all(i["reason"] for i in response["remaining_issues"])
    unknown = next(i for i in response["remaining_issues"] if i["issue"] == "invalid_permissions")
    assert unknown["reason"].startswith("unknown issue")
    assert response["success"] is False
    repo.apply(changes)
    after = repo.tree()
    assert all(after[p] == b for p, b in before.items())  # nothing removed or rewritten


def test_repair_unknown_issue_only_is_success(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, GOOD)
    changes, response = repair_changes(
        repo.snap(), "gitops", 7, "lab", issues=["invalid_permissions", "frobnicate"]
    )
    assert changes == {} and response["success"] is True and response["repairs_made"] == []
    assert [(i["issue"], i["reason"]) for i in response["remaining_issues"]][1] == (
        "frobnicate",
        "unknown issue",
    )


def test_repair_without_auto_detect_fixes_only_what_is_asked(tmp_path: Path) -> None:
    files = without(GOOD, "gitops/raw/", "gitops/managed/switches/")
    repo = make_repo(tmp_path, files)
    changes, response = repair_changes(
        repo.snap(), "gitops", 7, "lab", issues=["missing_raw_dir"], auto_detect=False,
        required_subdirs=("vpcs", "docs"),
    )
    assert set(changes) == {"gitops/raw/README.md"}
    assert [r["issue"] for r in response["repairs_made"]] == ["missing_raw_dir"]
    assert [i["issue"] for i in response["remaining_issues"]] == ["missing_subdir"]
    assert response["remaining_issues"][0]["reason"].startswith("not requested")
    assert response["success"] is False


def test_repair_reports_a_file_in_the_way(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {**GOOD, "gitops/managed/docs": b"x"})
    changes, response = repair_changes(repo.snap(), "gitops", 7, "lab",
                                       required_subdirs=("vpcs", "docs"))
    assert changes == {}
    stray, left = response["remaining_issues"]
    assert (stray["issue"], stray["path"]) == ("unknown_managed_file", "/gitops/managed/docs")
    assert left["issue"] == "missing_subdir" and "is a file" in left["reason"]
    assert response["success"] is False


# ---------------------------------------------------------------------------- list files


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Repo:
    assert FIXTURES.is_dir(), f"the Hedgehog fixtures are missing: {FIXTURES}"
    files = {f"gitops/raw/{p.name}": p.read_bytes() for p in sorted(FIXTURES.glob("*.yaml"))}
    shutil.copy(FIXTURES / "demogitops_env-1_vpc-test.yaml", tmp_path / "copy.yml")
    files["gitops/raw/sub/vpc-test.yml"] = (tmp_path / "copy.yml").read_bytes()
    files["gitops/raw/vpc.json"] = b"{}"
    files["gitops/raw/done.yaml.archived"] = VPC
    files["gitops/raw/README.md"] = b"readme\n"
    files["gitops/managed/vpcs/vpc-b.yaml"] = MANAGED_VPC
    files["gitops/managed/vpcs/wrong-name.yaml"] = MANAGED_VPC
    files["gitops/managed/switches/.gitkeep"] = b""
    return make_repo(tmp_path, files)


def by_name(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"].rsplit("/", 1)[-1]: f for f in listing["files"]}


def test_list_raw_fixtures(fixture_repo: Repo) -> None:
    snap = fixture_repo.snap()
    listing = list_files(snap, "gitops", directory="raw")
    files = by_name(listing)
    assert set(files) == {p.name for p in FIXTURES.glob("*.yaml")} | {
        "vpc-test.yml",
        "vpc.json",
        "done.yaml.archived",
        "README.md",
    }
    gateway = files["labci_env-ci-1_wiring-gateway.yaml"]
    assert gateway["valid"] is False
    assert [(e["index"], e["line"], e["code"]) for e in gateway["errors"]] == [
        (0, 5, FGDErrorCodes.UNSUPPORTED_RESOURCE),
        (1, 12, FGDErrorCodes.UNSUPPORTED_RESOURCE),
        (2, 22, FGDErrorCodes.UNSUPPORTED_RESOURCE),
    ]
    assert gateway["resources"] == [{"kind": "Connection", "name": n} for n in _gw_conns()]
    dup = files["docs_user-guide_vpcs_examples.yaml"]
    assert dup["valid"] is False and any("conflict" in e["message"] for e in dup["errors"])
    assert files["labci_env-ci-1_wiring.yaml"]["resource_count"] == 51
    assert files["hnp_vlab_prepop_wiring.yaml"]["resource_count"] == 46
    assert files["demogitops_env-1_demo.reset.yaml"] | {"path": None} == {
        "path": None,
        "directory": "raw",
        "size": (FIXTURES / "demogitops_env-1_demo.reset.yaml").stat().st_size,
        "modified": files["README.md"]["modified"],
        "valid": True,
        "resource_count": 0,
        "resources": [],
        "errors": [],
    }
    assert files["demogitops_env-1_pre-demo.yaml"]["resources"] == [
        {"kind": "VPC", "name": "demo-vpc-1"},
        {"kind": "VPC", "name": "demo-vpc-2"},
        {"kind": "VPCAttachment", "name": "demo-vpc-1--server-1--mclag--s5248-01--s5248-02"},
        {"kind": "VPCAttachment", "name": "demo-vpc-2--server-4--unbundled--s5248-02"},
    ]
    assert files["vpc.json"]["valid"] is False
    assert files["README.md"]["valid"] and files["done.yaml.archived"]["valid"]
    assert files["vpc-test.yml"]["path"] == "/gitops/raw/sub/vpc-test.yml"
    # modified: the commit time, as git reports it
    epoch = int(git("-C", fixture_repo.path, "log", "-1", "--format=%ct", "main"))
    modified = datetime.fromisoformat(files["README.md"]["modified"].replace("Z", "+00:00"))
    assert files["README.md"]["modified"].endswith("Z") and modified.timestamp() == epoch
    summary = listing["summary"]
    assert summary == {
        "total_files": 13,
        "valid_files": 13 - 3,  # gateway, within-file duplicate, vpc.json
        "invalid_files": 3,
        "total_resources": 0 + 4 + 4 + 1 + 7 + 5 + 46 + 2 + 51 + 1,
    }
    assert "content" not in gateway


def _gw_conns() -> list[str]:
    docs = load_documents((FIXTURES / "labci_env-ci-1_wiring-gateway.yaml").read_bytes())
    return [d.data["metadata"]["name"] for d in docs if d.data["kind"] == "Connection"]


def test_list_filters_and_content(fixture_repo: Repo) -> None:
    snap = fixture_repo.snap()
    yml = list_files(snap, "gitops", file_type="yml", include_content=True)
    assert [f["path"] for f in yml["files"]] == ["/gitops/raw/sub/vpc-test.yml"]
    assert yml["files"][0]["content"] == (FIXTURES / "demogitops_env-1_vpc-test.yaml").read_text()
    yaml_only = list_files(snap, "gitops", directory="raw", file_type="yaml")
    assert len(yaml_only["files"]) == 9  # not .yml, .json, .archived or README.md
    managed = by_name(list_files(snap, "gitops", directory="managed"))
    assert set(managed) == {"vpc-b.yaml", "wrong-name.yaml"}  # .gitkeep is not listed
    assert managed["vpc-b.yaml"]["valid"] is True
    assert managed["vpc-b.yaml"]["resources"] == [{"kind": "VPC", "name": "vpc-b"}]
    assert managed["wrong-name.yaml"]["valid"] is False
    assert "/gitops/managed/vpcs/vpc-b.yaml" in managed["wrong-name.yaml"]["errors"][0]["message"]
    everything = list_files(snap, "gitops")
    assert everything["summary"]["total_files"] == 15


def test_list_rejects_bad_parameters(fixture_repo: Repo) -> None:
    for kwargs in ({"directory": "archive"}, {"file_type": "json"}):
        with pytest.raises(ValidationError) as info:
            list_files(fixture_repo.snap(), "gitops", **kwargs)  # type: ignore[arg-type]
        assert info.value.code == FGDErrorCodes.VALIDATION_FAILED


def test_list_empty_repo(empty: Repo) -> None:
    listing = list_files(empty.snap(), "gitops")
    assert listing == {
        "files": [],
        "summary": {"total_files": 0, "valid_files": 0, "invalid_files": 0, "total_resources": 0},
    }


# ------------------------------------------------------------------- a sync on top of it


def test_initialize_sync_resync(empty: Repo) -> None:
    """Initialize (the sample is not ingested), copy the sample to a .yaml file as its header
    says, sync it, sync again: the second sync makes no commit."""
    rules = IngestionRules()
    snap = empty.apply(initialize_changes(empty.snap(), "gitops", 7, "lab")[0])

    def sync(snap: Snapshot, sync_id: str) -> dict[str, bytes | None]:
        entries = snap.files("gitops")
        raw = {
            f.path: RawFile(snap.read(f), f.is_symlink)
            for f in entries
            if f.path.startswith(rules.raw_prefix)
        }
        managed = {f.path: snap.read(f) for f in entries if f.path.startswith(rules.managed_prefix)}
        plan = plan_sync(raw, managed, [f.path for f in entries], {}, sync_id, rules)
        changes: dict[str, bytes | None] = {w.path: w.content for w in plan.changed_writes}
        for a in plan.archives:
            changes[a.archived_path], changes[a.raw_path] = raw[a.raw_path].content, None
        changes.update(
            metadata_changes(snap, rules, 7, "lab", plan, sync_id, "2025-08-02T10:00:00Z")
        )
        return changes

    assert sync(snap, "s0") == {}  # only the sample and the README: nothing to ingest
    snap = empty.apply({"gitops/raw/my-vpc.yaml": SAMPLE_TEXT.encode()}, "add a vpc")
    first = sync(snap, "s1")
    snap = empty.apply(first, "sync s1")
    tree = empty.tree()
    assert "gitops/managed/vpcs/example-vpc.yaml" in tree
    assert "gitops/raw/my-vpc.yaml.archived" in tree
    assert "gitops/raw/README.md" in tree  # skipped by the sync, never archived
    assert "gitops/raw/example-vpc.yaml.sample" in tree  # likewise
    assert b'"sync_id": "s1"' in empty.show("gitops/.hnp/provenance.json")
    report = validate_directory(snap, "gitops")
    assert report["valid"] and report["structure"]["metadata"]["last_updated"] == (
        "2025-08-02T10:00:00Z"
    )
    assert report["structure"]["raw"]["pending_files"] == 0
    count = empty.commits()
    second = sync(snap, "s2")
    assert second == {}
    assert empty.remote.commit(snap, second, "sync s2", AUTHOR) == snap.head
    assert empty.commits() == count
    assert render_provenance({}) != empty.show("gitops/.hnp/provenance.json")
