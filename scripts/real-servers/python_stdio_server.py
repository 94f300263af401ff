"""A small MCP server built with the official Python SDK (FastMCP), served over stdio.

It is what a typical author writes from the SDK's quick start: a few tools, one of them
reading files. mcproof scans it in scripts/real-servers.sh; docs/real-servers.md has the
findings.
"""
from pathlib import Path

from mcp.server.fastmcp import FastMCP

mcp = FastMCP("notes-demo")
NOTES: dict[str, str] = {}


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool()
def save_note(title: str, body: str) -> str:
    """Save a note under a title."""
    NOTES[title] = body
    return f"saved {title}"


@mcp.tool()
def read_note(title: str) -> str:
    """Read a note by title."""
    return NOTES[title]


@mcp.tool()
def read_file(path: str) -> str:
    """Read a text file from the working directory."""
    return Path(path).read_text()


if __name__ == "__main__":
    mcp.run()
