"""The ways in besides the Gradio app and the CLI: MCP (stdio and HTTP) and the OpenAI-compatible API, thin
over `kbagent.services`, and the answer as cited text they both return."""
