"""The Goldfish MCP server: thin, typed tools over the ``goldfish`` services."""
