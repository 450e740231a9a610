"""The errors whose message is the whole story for the user: one hierarchy, importable from every package.

It sits below every other module (it imports nothing of ours), so `knowledge_base`, `ingest`, `tools` and
`agent` raise these without importing each other, and the CLI and the app catch `KbagentError` alone.
"""


class KbagentError(Exception):
    """A problem the user can act on; the message says what to do. Shown as one line, never a traceback."""


class UserError(KbagentError):
    """A command was given something it can't use (a missing file, an unknown mode)."""


class ConfigError(KbagentError, ValueError):
    """A setting names something that can't be used here; the message says what to do instead."""


class AnswerError(KbagentError):
    """The agent gave no answer: the model failed, or stopped without one."""


class ServiceError(KbagentError):
    """A server kbagent keeps its state in (the database) can't be reached right now; the message names it."""


class UnknownKnowledgeBase(UserError):
    """No knowledge base has that name (or it was deleted): the same answer whether it never existed or is gone."""
