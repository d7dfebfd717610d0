"""Where jobs run. Each provider implements :class:`batchyard.providers.base.Provider`."""
