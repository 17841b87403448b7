"""Analysis: judging a canary step from what users got (the router's access log), Prometheus
queries, or probes of each side. The sources read samples; the verdict is plain arithmetic on
them. A new analysis source is a module here."""
