"""`opsagent mcp`: the tool registry offered over the Model Context Protocol, every call through the gate.

- `tokens`: the bearer-token map (token hashes -> actors) that HTTP callers authenticate with.
- `catalogue`: each registry tool as an MCP tool (input schema, annotations from its risk class). Pure.
- `service`: one call as one authenticated actor, through the gate, on channel `mcp`; resources. Sync.
- `server`: the MCP SDK server over stdio and streamable HTTP (the I/O edge).

A tool added to the registry is offered here with no change. Time-boxed
wakes are MCP-only tools over `opsagent.leases` (see `catalogue`), and the
active leases one more resource beside `opsagent://approvals/pending`.
"""
