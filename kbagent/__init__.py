"""kbagent: settings and the command line; the parts live in ingest/, knowledge_base/, tools/ and agent/."""

__version__ = "0.1.0"
