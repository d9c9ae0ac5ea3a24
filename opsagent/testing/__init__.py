"""Fakes that tests and evals share: a fake Ollama server and a scripted chat model.

Nothing in the running product imports this package; it exists so that tests
and evaluation scripts drive the same real code paths without a real model.
"""
