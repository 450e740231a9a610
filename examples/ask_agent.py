"""Ask kbagent's agent with a model of your choice and print its citations.

python examples/ask_agent.py "QUESTION" [MODEL]    (MODEL as `kbagent models` lists it; default: the configured one)
"""

import sys

from kbagent.components import Components
from kbagent.settings import load_settings

question = sys.argv[1]
model = sys.argv[2] if len(sys.argv) > 2 else None
with Components(load_settings()) as parts:
    answer = parts.agent(model).ask(question)
print(answer.answer)
for passage in answer.sources:  # the passages the answer cites as [n]
    print(passage.label)  # "[n] title — source (p. 3)": a page, slide, sheet or chapter
