"""Reading what an executed notebook printed and drew."""


def notebook_outputs(notebook):
    """(all text output joined, number of PNG images) of an executed notebook."""
    text, images = [], 0
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                images += "image/png" in out.data
                text.append(out.data.get("text/plain", ""))
                text.append(out.data.get("text/markdown", ""))
    return "\n".join(text), images
