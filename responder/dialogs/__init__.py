"""Conversation flows: what people ask the bot, parsed into commands (no Teams types here)."""
