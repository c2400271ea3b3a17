"""Jobs: one execution of a template that produces one iteration."""
