"""Drives the official, unmodified `openai` SDK against a base URL and prints what the SDK parsed, as JSON.

    python openai_client.py BASE_URL COMMAND MODEL [ARG...]

Commands: chat TEXT | chat_tools TEXT | stream TEXT | stream_tools TEXT | embeddings [--float] TEXT... | models.
An API error prints {"error": {"class", "status", "body", "message"}} instead (and exits 0), so the caller
asserts on how the SDK classified it.
"""

import json
import os
import sys

import openai

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}


def messages(text):
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def with_headers(raw):
    """The parsed body plus the response headers Tollgate adds."""
    headers = {k: v for k, v in raw.headers.items() if k.startswith("x-tollgate")}
    return {"response": raw.parse().model_dump(), "headers": headers}


def chat(client, model, text):
    return with_headers(client.chat.completions.with_raw_response.create(model=model, messages=messages(text)))


def chat_tools(client, model, text):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages(text), tools=[WEATHER_TOOL], tool_choice="auto"
    )
    return with_headers(raw)


def stream(client, model, text, tools=None):
    extra = {"tools": tools} if tools else {}
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages(text), stream=True, stream_options={"include_usage": True}, **extra
    )
    content, calls, finish, usage, chunks, roles = "", {}, None, None, 0, []
    for chunk in raw.parse():
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                roles.append(delta.role)
            content += delta.content or ""
            for call in delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    headers = {k: v for k, v in raw.headers.items() if k.startswith("x-tollgate")}
    return {
        "content": content,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "usage": usage,
        "chunks": chunks,
        "roles": roles,
        "content_type": raw.headers.get("content-type"),
        "headers": headers,
    }


def embeddings(client, model, *texts):
    extra = {}
    if texts and texts[0] == "--float":
        extra, texts = {"encoding_format": "float"}, texts[1:]
    raw = client.embeddings.with_raw_response.create(model=model, input=list(texts), **extra)
    parsed = with_headers(raw)
    parsed["vectors"] = [item["embedding"] for item in parsed["response"]["data"]]
    return parsed


def models(client, _model):
    return {"ids": [model.id for model in client.models.list()]}


COMMANDS = {
    "chat": chat,
    "chat_tools": chat_tools,
    "stream": stream,
    "stream_tools": lambda client, model, text: stream(client, model, text, tools=[WEATHER_TOOL]),
    "embeddings": embeddings,
    "models": models,
}


def main():
    base_url, command, model, *args = sys.argv[1:]
    client = openai.OpenAI(
        base_url=base_url, api_key=os.environ.get("CLIENT_API_KEY", "client-key"), max_retries=0, timeout=30
    )
    try:
        result = COMMANDS[command](client, model, *args)
    except openai.APIStatusError as error:
        result = {
            "error": {
                "class": type(error).__name__,
                "status": error.status_code,
                "body": error.body,
                "message": error.message,
            }
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
