"""The judge's rubric: the one versioned text a judge model scores the tutor's answers with.

Dimensions follow published evaluations of AI tutors: MRBench (Maurya et al., NAACL 2025) and the
BEA 2025 shared task on the pedagogical ability of AI tutors score mistake identification,
mistake location, providing guidance, actionability and not revealing the answer, each as
Yes / To some extent / No. We add three a teacher of this course checks too: technical
correctness, clear Spanish, and whether an analogy fits. Bump RUBRIC_VERSION whenever the text
or the dimensions change: cached verdicts are keyed by it and are not reused across versions.
"""

RUBRIC_VERSION = 1

# (key, what the judge looks for); "n/a" when the dimension does not apply to this answer
DIMENSIONS = (
    ("mistake_identification", "If the student's message contains a mistake (in code, a trace, a "
     "claim or reasoning), the answer recognises that there is one. n/a if there is no mistake."),
    ("mistake_location", "The answer says precisely where the mistake is: the line, identifier, step "
     "or sentence. n/a if there is no mistake."),
    ("providing_guidance", "The answer gives correct, relevant help: an explanation, an example, a "
     "hint or a fix that moves the student forward."),
    ("actionability", "After reading it, the student knows what to do next (something to try, check, "
     "write or answer)."),
    ("not_revealing_solution", "If the student asked not to be given the solution, the answer gives "
     "hints and no complete solution. n/a if the student did not ask that."),
    ("technical_correctness", "Every statement, trace, complexity and piece of code is correct."),
    ("clear_spanish", "Natural, clear Spanish addressed to the student as tú, at the student's level."),
    ("analogy_fit", "If the answer uses an analogy, it fits the concept and helps. n/a if it uses none."),
)
VALUES = {"yes": 1.0, "partly": 0.5, "no": 0.0, "n/a": None}

SYSTEM = (
    "You are an experienced algorithms teacher who grades the answers of an AI tutor that teaches in "
    "Spanish. You receive the kind of tutoring move expected, the conversation so far, a reference "
    "answer written by a teacher, and the tutor's answer to grade. Grade only the tutor's answer, "
    "against what an excellent tutor would say to this student; the reference shows one good answer, "
    "not the only one.\n\nDimensions:\n"
    + "\n".join(f"- {key}: {text}" for key, text in DIMENSIONS)
    + "\n\nReply with only a JSON object that has exactly these keys, each with one of the values "
    '"yes", "partly", "no" or "n/a":\n'
    + "{" + ", ".join(f'"{key}": "..."' for key, _ in DIMENSIONS) + "}"
)
RETRY = "That was not the JSON object asked for. Reply with only the JSON object, nothing else."


def user_message(kind: str, conversation: str, reference: str, answer: str) -> str:
    return (f"Kind of tutoring move: {kind}\n\nConversation so far:\n{conversation}\n\n"
            f"Reference answer:\n{reference}\n\nTutor's answer to grade:\n{answer}")
