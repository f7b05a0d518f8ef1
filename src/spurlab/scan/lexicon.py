"""Small word lists behind the lexicon shapes ``<COUNTRY>``, ``<COLOR>`` and ``<MONTH>``.

Kept here (not shared with the injector's sources) so the scanner's recall is measured against lists it did
not copy. Names are lowercase; multi-word names are matched as one token by the tokenizer.
"""

from __future__ import annotations

COUNTRIES: tuple[str, ...] = (
    "afghanistan", "albania", "algeria", "andorra", "angola", "antigua and barbuda", "argentina", "armenia",
    "australia", "austria", "azerbaijan", "bahamas", "the bahamas", "bahrain", "bangladesh", "barbados",
    "belarus", "belgium", "belize", "benin", "bhutan", "bolivia", "bosnia and herzegovina", "botswana",
    "brazil", "brunei", "bulgaria", "burkina faso", "burundi", "cabo verde", "cape verde", "cambodia",
    "cameroon", "canada", "central african republic", "chad", "chile", "china", "colombia", "comoros",
    "congo", "republic of the congo", "democratic republic of the congo", "costa rica", "cote d'ivoire",
    "côte d'ivoire", "ivory coast", "croatia", "cuba", "cyprus", "czechia", "czech republic", "denmark",
    "djibouti", "dominica", "dominican republic", "east timor", "timor-leste", "ecuador", "egypt",
    "el salvador", "equatorial guinea", "eritrea", "estonia", "eswatini", "swaziland", "ethiopia", "fiji",
    "finland", "france", "gabon", "gambia", "the gambia", "georgia", "germany", "ghana", "greece", "grenada",
    "guatemala", "guinea", "guinea-bissau", "guyana", "haiti", "honduras", "hungary", "iceland", "india",
    "indonesia", "iran", "iraq", "ireland", "israel", "italy", "jamaica", "japan", "jordan", "kazakhstan",
    "kenya", "kiribati", "kosovo", "kuwait", "kyrgyzstan", "laos", "latvia", "lebanon", "lesotho", "liberia",
    "libya", "liechtenstein", "lithuania", "luxembourg", "madagascar", "malawi", "malaysia", "maldives",
    "mali", "malta", "marshall islands", "mauritania", "mauritius", "mexico", "micronesia", "moldova",
    "monaco", "mongolia", "montenegro", "morocco", "mozambique", "myanmar", "burma", "namibia", "nauru",
    "nepal", "netherlands", "the netherlands", "new zealand", "nicaragua", "niger", "nigeria", "north korea",
    "north macedonia", "macedonia", "norway", "oman", "pakistan", "palau", "palestine", "panama",
    "papua new guinea", "paraguay", "peru", "philippines", "the philippines", "poland", "portugal", "qatar",
    "romania", "russia", "russian federation", "rwanda", "saint kitts and nevis", "saint lucia",
    "saint vincent and the grenadines", "samoa", "san marino", "sao tome and principe",
    "são tomé and príncipe", "saudi arabia", "senegal", "serbia", "seychelles", "sierra leone", "singapore",
    "slovakia", "slovenia", "solomon islands", "somalia", "south africa", "south korea", "south sudan",
    "spain", "sri lanka", "sudan", "suriname", "sweden", "switzerland", "syria", "taiwan", "tajikistan",
    "tanzania", "thailand", "togo", "tonga", "trinidad and tobago", "tunisia", "turkey", "türkiye",
    "turkmenistan", "tuvalu", "uganda", "ukraine", "united arab emirates", "united kingdom",
    "united states", "united states of america", "uruguay", "uzbekistan", "vanuatu", "vatican city",
    "holy see", "venezuela", "vietnam", "viet nam", "yemen", "zambia", "zimbabwe", "usa", "uk",
)

COLORS: tuple[str, ...] = (
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray", "grey",
    "violet", "indigo", "cyan", "magenta", "turquoise", "teal", "navy", "maroon", "olive", "lime", "aqua",
    "fuchsia", "silver", "gold", "golden", "beige", "ivory", "khaki", "lavender", "lilac", "mauve", "coral",
    "salmon", "crimson", "scarlet", "vermilion", "burgundy", "amber", "ochre", "tan", "taupe", "charcoal",
    "azure", "cerulean", "cobalt", "sapphire", "emerald", "jade", "mint", "chartreuse", "periwinkle",
    "plum", "orchid", "mustard", "peach", "apricot", "bronze", "copper", "rust", "sienna", "umber",
    "sepia", "cream", "aquamarine", "amethyst", "ruby", "cyan", "slate", "ebony", "champagne", "cinnamon",
    "mahogany", "raspberry", "cherry", "rose", "wine", "sky blue", "navy blue", "light blue", "dark blue",
    "royal blue", "baby blue", "light green", "dark green", "forest green", "olive green", "lime green",
    "sea green", "hot pink", "light pink", "dark red", "blood red", "light gray", "dark gray", "light grey",
    "dark grey", "off white", "off-white", "burnt orange", "pale yellow", "bright yellow", "dark purple",
)

MONTHS: tuple[str, ...] = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec",
)

LEXICONS: dict[str, frozenset[str]] = {
    "<COUNTRY>": frozenset(COUNTRIES),
    "<COLOR>": frozenset(COLORS),
    "<MONTH>": frozenset(MONTHS),
}


def multiword_phrases() -> list[str]:
    """Every multi-word lexicon entry, longest first (so the tokenizer prefers the longest match)."""
    phrases = {p for words in LEXICONS.values() for p in words if " " in p}
    return sorted(phrases, key=lambda p: (-len(p), p))
