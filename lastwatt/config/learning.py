"""Config of the payoff-driven staker policies (``[population.ewa]``, ``[population.q_learning]``;
docs/model.md, "Payoff-driven stakers"). ``lastwatt.config.run`` composes them."""

from __future__ import annotations

from pydantic import Field

from lastwatt.config.base import Section


class EwaConfig(Section):
    """Experience-weighted attraction stakers: reinforcement on own (and foregone) payoffs."""
    decay: float = Field(0.9, ge=0, le=1, description="phi: weight kept on past attractions")
    foregone_weight: float = Field(
        0.0, ge=0, le=1, description="delta: weight of payoffs of businesses not bonded to"
    )
    experience_decay: float = Field(0.9, ge=0, le=1, description="rho: decay of experience N")
    sensitivity: float = Field(
        100.0, ge=0, description="lambda: logit weight of attraction (per token earned per token)"
    )
    abstain_when_negative: bool = Field(
        False, description="abstain when every candidate's attraction is negative"
    )


class QLearningConfig(Section):
    """Bandit stakers: businesses are arms, reward minus slash per token the payoff."""
    learning_rate: float = Field(0.3, gt=0, le=1, description="alpha of Q += alpha (payoff - Q)")
    epsilon: float = Field(0.05, ge=0, le=1, description="share of rounds it bonds at random")
    abstain_when_negative: bool = Field(
        True, description="abstain when every candidate's Q is negative"
    )
