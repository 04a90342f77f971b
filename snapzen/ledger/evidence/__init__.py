"""The evidence: the vocabulary of events, the hash chain and its checks, checkpoints, the decision
log, the auditor's queries, the Art. 30 records and the auditor UI."""
