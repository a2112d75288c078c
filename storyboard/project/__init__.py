"""The project as written: YAML loading, schemas, the model, prompt rendering, `init`.

Imports only storyboard's base modules (errors, wording, usercache, fsutil, images, machine).
"""
