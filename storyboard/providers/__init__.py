"""Image providers: `local` (offline placeholders) and `atlascloud` (Seedream 4.5 on Atlas Cloud)."""
