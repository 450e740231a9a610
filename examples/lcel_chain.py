"""The knowledge base's retriever in your own LCEL chain, with any LangChain chat model.

python examples/lcel_chain.py "QUESTION" [provider:model]    (default openai:gpt-4o-mini, needs OPENAI_API_KEY)
"""

import sys

from langchain.chat_models import init_chat_model
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from kbagent.components import Components
from kbagent.settings import load_settings

question = sys.argv[1]
model = init_chat_model(sys.argv[2] if len(sys.argv) > 2 else "openai:gpt-4o-mini")
prompt = ChatPromptTemplate.from_messages(
    [("system", "Answer only from these passages; cite them as [n].\n\n{context}"), ("human", "{question}")]
)


def numbered(docs: list) -> str:
    return "\n\n".join(f"[{n}] {d.metadata.get('title', '')}: {d.page_content}" for n, d in enumerate(docs, 1))


with Components(load_settings()) as parts:
    context = parts.kb.as_retriever(k=4) | numbered
    chain = {"context": context, "question": RunnablePassthrough()} | prompt | model | StrOutputParser()
    print(chain.invoke(question))
