"""Instruction prompts: chat messages rendered with the model family's chat template."""

from __future__ import annotations

from dataclasses import dataclass

from nearcode.daemon.prompting.templates import ChatTemplate, render


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str


def render_chat(messages: list[ChatMessage], template: ChatTemplate) -> str:
    """The prompt for the assistant's next turn; a default system message is added if none is given."""
    by_role = {"system": template.system, "user": template.user, "assistant": template.assistant}
    for message in messages:
        if message.role not in by_role:
            raise ValueError(f"unknown chat role {message.role!r}")
    systems = [m.content for m in messages if m.role == "system"]
    if not systems and template.default_system:
        systems = [template.default_system]
    turns = [m for m in messages if m.role != "system"] if template.system_in_first_user else messages
    parts = []
    if template.system_in_first_user:
        # No system turn in this family: the system text opens the first user message.
        pending = "".join(render(template.system, {"content": s}) for s in systems)
        for message in turns:
            content = message.content
            if message.role == "user" and pending:
                content, pending = pending + content, ""
            parts.append(render(by_role[message.role], {"content": content}))
        if pending:  # only system messages were given: they become the user turn
            parts.append(render(template.user, {"content": pending}))
    else:
        if template.default_system and not any(m.role == "system" for m in messages):
            parts.append(render(template.system, {"content": template.default_system}))
        parts.extend(render(by_role[m.role], {"content": m.content}) for m in turns)
    parts.append(template.generation_prompt)
    return "".join(parts)
