"""ssi-plugin: generative text-to-image retrieval with Structured Semantic Identifiers.

Importing the package is cheap: no torch, no engine client is loaded until used.
"""

__version__ = "0.1.0"
