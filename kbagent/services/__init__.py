"""The operations every front door shares (the Gradio app, MCP, the OpenAI-compatible API), without Gradio:
answers per session choice, ingest, sources, evaluations, watched folders, and who may come in."""
