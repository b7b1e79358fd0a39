"""Schedule: triggers from config, the scheduled jobs, the runner process and health."""
