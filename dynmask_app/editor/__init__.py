"""The sidebar: the recipe editor (its controls, one widget per recipe field, the inputs, the token
counter, the display switches).
"""
