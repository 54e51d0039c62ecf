"""Drives the official, unmodified `anthropic` SDK against a base URL and prints what the SDK parsed, as JSON.

    python anthropic_client.py BASE_URL COMMAND MODEL TEXT [--tools]

Commands: create | stream | conversation | count. `conversation` streams a tool-using exchange: the first
turn offers the weather tool; when the model calls it, the call and a tool result go back in a second streamed
turn, whose answer ends it. `count` asks count_tokens. An API error prints {"error": {"class", "status",
"body"}} (and exits 0).
"""

import json
import os
import sys

import anthropic

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}


def params(model, text, tools):
    extra = {"tools": [WEATHER_TOOL]} if tools else {}
    return dict(model=model, max_tokens=256, system="You are terse.", messages=[{"role": "user", "content": text}], **extra)


def create(client, model, text, tools):
    return {"message": client.messages.create(**params(model, text, tools)).model_dump()}


def stream(client, model, text, tools):
    texts, event_types, tool_inputs = [], [], []
    with client.messages.stream(**params(model, text, tools)) as events:
        for event in events:
            event_types.append(event.type)
            if event.type == "text":
                texts.append(event.text)
            elif event.type == "input_json":
                tool_inputs.append(event.partial_json)
        final = events.get_final_message()
    return {"message": final.model_dump(), "texts": texts, "event_types": event_types, "tool_json": tool_inputs}


def conversation(client, model, text, tools):
    messages = [{"role": "user", "content": text}]
    turns = []
    for _ in range(2):
        args = dict(params(model, text, True), messages=messages)
        with client.messages.stream(**args) as events:
            event_types = [event.type for event in events]
            final = events.get_final_message()
        turns.append({"message": final.model_dump(), "event_types": event_types})
        calls = [block for block in final.content if block.type == "tool_use"]
        if not calls:
            break
        messages = messages + [
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in final.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "sunny and 21 degrees"} for call in calls
            ]},
        ]
    return {"turns": turns}


def count(client, model, text, tools):
    extra = {"tools": [WEATHER_TOOL]} if tools else {}
    counted = client.messages.count_tokens(
        model=model, system="You are terse.", messages=[{"role": "user", "content": text}], **extra
    )
    return {"input_tokens": counted.input_tokens}


def main():
    base_url, command, model, text, *flags = sys.argv[1:]
    client = anthropic.Anthropic(
        base_url=base_url, api_key=os.environ.get("ANTHROPIC_TEST_KEY", "test-provider-key"), max_retries=0, timeout=30
    )
    try:
        commands = {"create": create, "stream": stream, "conversation": conversation, "count": count}
        result = commands[command](client, model, text, "--tools" in flags)
    except anthropic.APIStatusError as error:
        result = {"error": {"class": type(error).__name__, "status": error.status_code, "body": error.body}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
