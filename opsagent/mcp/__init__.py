"""`opsagent mcp`: the tool registry offered over the Model Context Protocol, every call through the gate.

- `tokens`: the bearer-token map (token hashes -> actors) that HTTP callers authenticate with.
- `catalogue`: each registry tool as an MCP tool (input schema, annotations from its risk class). Pure.
- `service`: one call as one authenticated actor, through the gate, on channel `mcp`; resources. Sync.
- `server`: the MCP SDK server over stdio and streamable HTTP (the I/O edge).

A tool added to the registry (time-boxed wakes, for instance) is offered here
with no change; a read-only view of its state (a list of leases) would be one
more resource beside `opsagent://approvals/pending` in `server`, read through
`service`.
"""
