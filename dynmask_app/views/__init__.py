"""What pages draw: one module per page id, and the parts they share (charts, image, audio, long inputs,
explanations, downloads, the results area).
"""
