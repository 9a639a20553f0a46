"""Moving the service between sides: authoritative DNS answers, Route 53 records, promotion, cutover and failback."""
