"""The MyAgent server API (seed 003), served by the agenthub core.

from agenthub.myagent import AgentWebSocketServer, BaseTool, ToolResult, create_toolcall_agent
"""

from __future__ import annotations

from .agent import ToolCallAgent, create_toolcall_agent
from .server import AgentWebSocketServer
from .tool import BaseTool, ToolError, ToolResult

__all__ = ["AgentWebSocketServer", "BaseTool", "ToolCallAgent", "ToolError", "ToolResult", "create_toolcall_agent"]
