"""Root of the tests: pytest puts this folder on the import path, so every test folder can
import the shared helpers here (``waiting``)."""
