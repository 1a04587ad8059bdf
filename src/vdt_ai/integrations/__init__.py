"""Framework integrations: ``vdt_ai.integrations.sklearn``, ``.spark``, ...

Each module is imported only when you import it, and needs its framework
(``pip install 'vdt-ai[sklearn]'``, ``[spark]``, ...). Integrations use only the
public client API and never break the code they wrap: an internal failure is
counted in ``stats().integration_errors``, logged once, and the wrapped call
returns exactly what it would have returned.
"""
