"""Shared pieces of the Tutor de Algoritmos pipeline (data, LoRA, chat formats, llama.cpp)."""
