"""Data registry tools: register_source, manage_sources, promote_artifact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.sources.models import ManageSourcesResult, PromoteResult, RegisterSourceResult
from mcp_server.budget import fit_page
from mcp_server.context import ServerContext, guarded

F = TypeVar("F", bound=Callable[..., Any])

SourceName = Annotated[
    str, Field(min_length=1, max_length=64, description="Source name: letters, digits, '_' or '-' (e.g. sales_v1).")
]
Reason = Annotated[str, Field(min_length=1, max_length=4000, description="Why (at least audit.min_reason_length characters).")]
Metadata = Annotated[
    dict[str, Any],
    Field(description="The full metadata document: {schema_version: 1, description, source, schema}."),
]
FormatArg = Annotated[
    Literal["npy", "npz", "csv", "file"] | None, Field(description="Optional; must equal metadata.source.format.")
]
SizeArg = Annotated[
    int | None, Field(ge=1, le=10**15, description="Optional; must equal metadata.source.size_bytes.")
]

METADATA_EXAMPLES = """
Metadata examples (every key shown is required; no others are allowed):
npy, one float32 array of 1000 rows x 3 features:
  {"schema_version": 1, "description": "Daily sales features for 1000 stores, from sales.db",
   "source": {"format": "npy", "size_bytes": 12128, "created_at": "2025-12-24T12:00:00Z"},
   "schema": {"kind": "tensor", "primary_array": "features",
     "arrays": {"features": {"role": "features", "shape": [1000, 3], "dtype": "float32",
       "feature_names": {"kind": "list", "values": ["price", "volume", "returns"]}}}}}
csv, 5000 rows:
  {"schema_version": 1, "description": "Labelled customer churn table exported from CRM",
   "source": {"format": "csv", "size_bytes": 84211, "created_at": "2025-12-24T12:00:00Z",
              "format_params": {"delimiter": ","}},
   "schema": {"kind": "tabular", "row_count": 5000, "columns": ["customer_id", "churned"],
              "dtypes": {"customer_id": "int64", "churned": "bool"}}}
Rules: description ≥ 20 characters; feature_names count = last shape dimension (pattern form
{"kind": "pattern", "template": "f_{i}", "start": 0, "count": N, "sample": ["f_0"]} for many;
{"kind": "none", "reason": "..."} only for shape []); npz may hold several arrays; file sources use
{"kind": "file", "content_type": "application/octet-stream"}. Directory sources are rejected."""


def with_examples(fn: F) -> F:
    """Append the metadata examples to a tool's docstring (before MCP reads it)."""
    fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + METADATA_EXAMPLES
    return fn


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            title="Register data source", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
            open_world_hint=True,
        )
    )
    @guarded
    @with_examples
    def register_source(
        name: SourceName,
        gcs_path: Annotated[
            str,
            Field(min_length=1, max_length=4096,
                  description="Where the file is: a local path (absolute or relative to the project root), "
                              "file:///abs/path, or gs://bucket/object (needs the gcs section in goldfish.yaml)."),
        ],
        description: Annotated[
            str, Field(min_length=1, max_length=4000, description="Must equal metadata.description exactly.")
        ],
        reason: Reason,
        metadata: Metadata,
        format: FormatArg = None,
        size_bytes: SizeArg = None,
    ) -> RegisterSourceResult:
        """Register one data file as a named source that pipelines read with `dataset: <name>`.

        The file is not copied: Goldfish records its location, size and sha256 and checks them
        before every run that reads it (a changed file blocks the run until you register it under a
        new name or manage_sources(action='update')). metadata.source.size_bytes must equal the
        file's size. Every metadata problem is reported at once; nothing is registered on error.
        """
        return ctx.project().sources.register_source(
            name, gcs_path, description, reason, metadata, format=format, size_bytes=size_bytes
        )

    @server.tool(
        annotations=ToolAnnotations(
            title="Manage data sources", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
            open_world_hint=True,
        )
    )
    @guarded
    def manage_sources(
        action: Annotated[
            Literal["list", "get", "lineage", "update", "delete"],
            Field(description="list | get | lineage (read-only) | update (needs metadata, reason) | "
                              "delete (needs reason; destructive)."),
        ],
        name: Annotated[SourceName | None, Field(description="Source name; required except for list.")] = None,
        status: Annotated[Literal["available"] | None, Field(description="list: filter by status.")] = None,
        created_by: Annotated[
            str | None,
            Field(max_length=80, description="list: 'external', 'run' (any run) or 'run:stage-xxxxxxxx'."),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="update: the complete new metadata document.")
        ] = None,
        reason: Annotated[str | None, Field(max_length=4000, description="update/delete: why.")] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="list: page size; lineage: most consumers shown.")] = 50,
        offset: Annotated[int, Field(ge=0, description="list: skip this many (newest first).")] = 0,
    ) -> ManageSourcesResult:
        """List, inspect, trace, update or delete registered data sources.

        - list: one page of sources (newest first) with `total` and `has_more`; filters status, created_by.
        - get: the source with its metadata and an integrity check (ok / changed / missing).
        - lineage: parent sources, the run that produced it (for promoted outputs), runs that read it.
        - update: replace the metadata (source.format cannot change) and record the file's current
          content; use it to accept a source file that changed since registration.
        - delete: DESTRUCTIVE for the registry entry (the data file itself is never touched); refused
          while a run that reads the source has not finished.
        """
        return fit_page(ctx.project().sources.manage_sources(
            action, name=name, status=status, created_by=created_by, metadata=metadata, reason=reason,
            limit=limit, offset=offset,
        ), "sources")

    @server.tool(
        annotations=ToolAnnotations(
            title="Promote run output to source", read_only_hint=False, destructive_hint=False,
            idempotent_hint=False, open_world_hint=False,
        )
    )
    @guarded
    @with_examples
    def promote_artifact(
        job_id: Annotated[str, Field(min_length=1, max_length=40, description="Stage run id (stage-xxxxxxxx).")],
        output_name: Annotated[str, Field(min_length=1, max_length=64, description="A declared output of that run.")],
        source_name: SourceName,
        reason: Reason,
        metadata: Metadata,
        description: Annotated[
            str | None, Field(max_length=4000, description="Optional; must equal metadata.description.")
        ] = None,
        format: FormatArg = None,
        size_bytes: SizeArg = None,
    ) -> PromoteResult:
        """Make an output file of a completed stage run a named source other pipelines can read.

        The run must be completed (finalization is not needed). Only file outputs (npy, npz, csv,
        file) can be promoted, not directories. Nothing is copied: the source points at the run's
        read-only output, and its lineage records the run and the sources that run read.
        metadata.source.size_bytes may be null here; if given it must equal the file's size.
        """
        return ctx.project().sources.promote_artifact(
            job_id, output_name, source_name, reason, metadata, description=description, format=format,
            size_bytes=size_bytes,
        )

