"""Periodic work: specs and fire times, the stored records, the scheduler, ``app.schedules``."""
