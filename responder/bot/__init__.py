"""Everything Teams-shaped. Botbuilder types do not leave this package."""
