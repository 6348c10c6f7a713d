"""Tool preparation prompts: questions, drafts, gap analysis, result schemas."""
