"""A MyAgent example: a weather agent with one offline, deterministic tool.

    agenthub serve-agent examples/weather_agent.py --port 8080 --dev

Then ask "What's the weather in Paris?" from any MyAgent client.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from agenthub.myagent import BaseTool, ToolResult, create_toolcall_agent
from agenthub.myagent.agent import ToolCallAgent

# A small built-in table: (condition, temperature in Celsius, humidity %).
WEATHER: dict[str, tuple[str, int, int]] = {
    "beijing": ("sunny", 18, 30),
    "shanghai": ("light rain", 21, 80),
    "paris": ("cloudy", 14, 65),
    "london": ("drizzle", 12, 85),
    "new york": ("clear", 16, 50),
    "tokyo": ("partly cloudy", 19, 60),
}


class WeatherTool(BaseTool):
    name = "get_weather"
    description = "Current weather for a city (offline table)."
    parameters = MappingProxyType(
        {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "city name, e.g. Paris"}},
            "required": ["city"],
        }
    )

    async def execute(self, **kwargs: Any) -> ToolResult:
        city = str(kwargs.get("city", "")).strip()
        entry = WEATHER.get(city.lower())
        if entry is None:
            return ToolResult(error=f"no weather data for {city!r}; known: {', '.join(sorted(WEATHER))}")
        condition, temp, humidity = entry
        return ToolResult(output=f"Weather in {city.title()}: {condition}, {temp}°C, humidity {humidity}%.")

    def match(self, message: str) -> dict[str, Any] | None:
        lowered = message.lower()
        for city in WEATHER:
            if city in lowered:
                return {"city": city}
        return {"city": "unknown"} if "weather" in lowered else None


def create_agent() -> ToolCallAgent:
    """Called once per MyAgent session."""
    return create_toolcall_agent(tools=[WeatherTool()], name="weather_agent", description="Weather assistant")
