"""The technician's service tool: a web page served by the car's board (docs/service-tool.md). Never in the safety
path: its own process, at lower priority, reading the loop's state over the side channels."""
