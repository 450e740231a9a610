"""The agent's tools: knowledge-base search, a guarded web page fetcher/scraper, a safe calculator."""
