# my_agent_server.py
import asyncio
from myagent import create_toolcall_agent
from myagent.ws.server import AgentWebSocketServer
from myagent.tool import BaseTool, ToolResult

class MyTool(BaseTool):
    name = "my_tool"
    description = "示例工具"

    async def execute(self, **kwargs) -> ToolResult:
        return ToolResult(output="工具执行成功")

def create_agent():
    """Agent工偂函数 - 息个会话创建一个新的Agent偮例"""
    tools = [MyTool()]
    return create_toolcall_agent(
        tools=tools,
        name="my_agent",
        description="我的智能助手"
    )

async def main():
    # 创建WebSocket服务器
    server = AgentWebSocketServer(
        agent_factory_func=create_agent,
        host="localhost",
        port=8080,
        state_secret_key="your-production-secret-key"  # 生产灯境必须�供固定密钥
    )

    try:
        # 可动服务器
        await server.start_server()
    except KeyboardInterrupt:
        print("\n恣在关遗服务器...")
        await server.shutdown()

if __name__ == "__main__":
    asyncio.run(main())
