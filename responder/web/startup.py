"""A setting combination the web pages must not run with (raised from a page module's
``setup``; ``build_app`` turns it into its own StartupError)."""


class WebStartupError(RuntimeError):
    pass
