"""The outside tools' own overhead, without the network: a `web_search` call per provider against its stand-in on
loopback (request, bounded read, parse, data wrappers), and an outside MCP tool call over stdio and over
streamable HTTP (the hub's loop thread, the session, the wrapper), each the median and p95 of N calls as the agent
makes them (a LangChain tool call). Also the time an MCP server takes to start and list its tools.

    .venv/bin/python bench/tools_overhead.py [--calls 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from record import save  # bench/record.py: every result file with its command

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def _timed(tool: Any, args: dict[str, Any], calls: int) -> dict[str, float]:
    samples = []
    for i in range(calls + 3):  # three warm-up calls
        started = time.perf_counter()
        message = tool.invoke({"type": "tool_call", "id": f"c{i}", "name": tool.name, "args": args})
        elapsed = time.perf_counter() - started
        assert message.artifact is not None and not str(message.content).startswith(("Web search (", "MCP server"))
        if i >= 3:
            samples.append(elapsed)
    return _ms(samples)


def web_search(calls: int) -> dict[str, Any]:
    from tests.support.search_stand_in import KEY, search_stand_in
    from tools.config import SearchKeys, ToolsConfig
    from tools.web_search import PROVIDERS, make_web_search, make_web_search_tool

    keys = SearchKeys(brave_search_api_key=KEY, tavily_api_key=KEY, serpapi_api_key=KEY)
    figures = {}
    with search_stand_in() as stand_in:
        for name in PROVIDERS:
            search = make_web_search(ToolsConfig(web_search=f"{name}:{stand_in.endpoint(name)}"), keys)
            assert search is not None
            figures[name] = _timed(make_web_search_tool(search), {"query": "harbor co-op hours"}, calls)
            search.close()
    return figures


def mcp(calls: int) -> dict[str, Any]:
    from tests.support.servers import free_port
    from tools.config import ToolsConfig
    from tools.mcp_client import make_mcp_tools, start_mcp

    script = str(REPO / "tests" / "support" / "mcp_outside_server.py")
    port = free_port()
    server = subprocess.Popen([sys.executable, script, "http", str(port), "t"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)  # the HTTP server's start is not what is measured
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "servers.json"
            servers = {
                "stdio": {"command": sys.executable, "args": [script, "stdio"]},
                "http": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"Authorization": "Bearer t"}},
            }
            path.write_text(json.dumps({"mcpServers": servers}))
            started = time.perf_counter()
            hub = start_mcp(ToolsConfig(mcp_servers=path))
            start_s = time.perf_counter() - started
            assert hub is not None and not hub.problems, hub and hub.problems
            with hub:
                tools = {t.name: t for t in make_mcp_tools(hub)[0]}
                figures: dict[str, Any] = {"start_both_servers_s": round(start_s, 2)}
                for transport in ("stdio", "http"):
                    figures[transport] = _timed(tools[f"{transport}__lookup"], {"term": "ferry"}, calls)
        return figures
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    figures = {"calls": args.calls, "web_search": web_search(args.calls), "mcp": mcp(args.calls)}
    print(json.dumps(figures, indent=2))
    print(f"wrote {save('tools_overhead', figures)}")


if __name__ == "__main__":
    main()
