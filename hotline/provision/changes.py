"""For the engine merge only: engine/directory.py imports NOTIFY_CHANNEL from here. The channel is
hotline.store.provisioning_changes.NOTIFY_CHANNEL; delete this module when the engine imports that."""

NOTIFY_CHANNEL = "hotline_provisioning"  # for the engine merge: equal to store.provisioning_changes'
