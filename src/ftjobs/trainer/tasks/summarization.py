"""summarization: a document -> its short summary, scored with ROUGE.

The seq2seq adapter's rows, model loading, tokenization, collator and greedy generation
(capped at evaluation.maxNewTokens) with ROUGE-1, ROUGE-2 and ROUGE-L instead of chrF and
BLEU: the mean F-measure over the rows (`rouge-score`, Porter stemming), 0-100 like the
other generative metrics, plus the token-weighted loss. Encoder-decoder models (T5, BART,
Pegasus) learn the summary as decoder labels; decoder-only models learn it as the
response to the document.
"""

from __future__ import annotations

from ftjobs.trainer.tasks.seq2seq import Seq2Seq

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class Summarization(Seq2Seq):
    name = "summarization"

    def scores(self, hypotheses: list[str], references: list[str]) -> dict[str, float]:
        """Mean ROUGE F-measures (0-100) of the generated summaries against the references."""
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            for kind, score in scorer.score(reference, hypothesis).items():
                totals[kind] += score.fmeasure
        count = max(len(references), 1)
        return {kind: 100.0 * total / count for kind, total in totals.items()}
