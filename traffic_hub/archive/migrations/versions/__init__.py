"""The archive's Alembic revisions, one file each: `NNNN_what.py`, revision id "NNNN", executing one SQL constant.

A package (not a bare folder) so that the wheel and the Docker image ship the revisions with the code.
"""
