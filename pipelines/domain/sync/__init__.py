"""Stock sync domain logic (pure): netting, count/delta ordering, the rate-budget governor, lag stats."""

from pipelines.domain.sync.governor import Budget, Governor, mark_critical, online_keys, prioritise, rank
from pipelines.domain.sync.model import KeyPlan, Mutation, QueuedMovement, Watermark
from pipelines.domain.sync.netting import group_mutations, net_key, newer_count
from pipelines.domain.sync.stats import percentile

__all__ = ["Budget", "Governor", "KeyPlan", "Mutation", "QueuedMovement", "Watermark", "group_mutations", "mark_critical",
           "online_keys",
           "net_key", "newer_count", "percentile", "prioritise", "rank"]
