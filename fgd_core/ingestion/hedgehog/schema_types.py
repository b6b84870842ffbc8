"""Building blocks of the CRD schema models: Go's integer widths, optional scalars, and
``Spec``, the base of every spec model (unknown fields kept, never an error)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

U8 = Annotated[StrictInt, Field(ge=0, le=255)]
U16 = Annotated[StrictInt, Field(ge=0, le=65535)]
U32 = Annotated[StrictInt, Field(ge=0, le=4294967295)]
Str = str | None
Bool = StrictBool | None
StrList = list[str] | None


class Spec(BaseModel):
    """Spec models: unknown fields are kept and never an error."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
