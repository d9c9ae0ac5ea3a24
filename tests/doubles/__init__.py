"""Test doubles: small stand-ins the tests share (a tiny recording cluster, an agent world,
a fake Slack Web API, a fake OpenAI-compatible server, example policy files).

They live under tests/ and never ship. What `opsagent eval` and the demo need (the
scripted chat model, the fake Ollama server) is part of the product, in `opsagent.evals`.
"""
