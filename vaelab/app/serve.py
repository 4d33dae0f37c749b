"""The server process of ``vaelab app``: Streamlit's command line (``python -m vaelab.app.serve run APP ...``), with
what the pages import loaded before the server answers, so the first visitor waits for none of it (torch alone
takes seconds; a page script's imports are shared by every later page, in this process)."""
import sys


def warm_up() -> None:
    """Import what every page needs: torch, the models and the figures (through :mod:`vaelab.app.ui`), and the
    tables' pandas and pyarrow (``st.dataframe``)."""
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from . import ui  # noqa: F401


def main() -> None:
    warm_up()
    from streamlit.web.cli import main as streamlit

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit()


if __name__ == "__main__":
    main()
