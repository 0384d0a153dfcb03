"""Structured output: a Pydantic schema filled in by a W&B Inference model.

``llm.with_structured_output(MovieReview)`` sends the schema as W&B's
``response_format={"type": "json_schema", ...}`` (W&B: "use structured output instead
of JSON mode when possible") and parses the answer into a ``MovieReview``; a model
that refuses ``response_format`` with a 422 is retried with function calling instead.
The result is a validated Pydantic object, not text to parse.

Run it (from the repository root)::

    python examples/structured_output.py           # local emulator: no key
    WANDB_API_KEY=... python examples/structured_output.py
"""

from __future__ import annotations

import argparse

from _target import connect
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from langchain_wandb_inference import WBModel

REVIEW = (
    "Saw 'Spirited Away' again last night. It came out in 2001 and still holds up: "
    "I'd give it 9 out of 10. Verdict: 'a masterpiece of hand-drawn animation'."
)


class MovieReview(BaseModel):
    """A movie review, reduced to the facts a recommender needs."""

    title: str = Field(description="The movie's title")
    year: int = Field(description="Release year")
    rating: int = Field(ge=1, le=10, description="The reviewer's score out of 10")
    verdict: str = Field(description="The reviewer's one-line verdict")


def review_of(llm: BaseChatModel, text: str) -> MovieReview:
    """Extract a ``MovieReview`` from free text."""
    structured = llm.with_structured_output(MovieReview)
    result = structured.invoke([("system", "Extract the movie review."), ("user", text)])
    return MovieReview.model_validate(result)  # already one; this narrows the static type


def main(argv: list[str] | None = None) -> int:
    """Extract one review and print it field by field."""
    parser = argparse.ArgumentParser(description="Pydantic structured output on W&B.")
    parser.add_argument("--model", default=WBModel.LLAMA_3_3_70B_INSTRUCT.value)
    parser.add_argument("--text", default=REVIEW)
    args = parser.parse_args(argv)

    with connect() as target:
        review = review_of(target.chat(args.model), args.text)
    print(f"Model: {args.model}\nInput: {args.text}\n\nParsed: {review!r}")
    for name, value in review.model_dump().items():
        print(f"  {name:8} {value!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
