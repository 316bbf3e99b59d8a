"""Entry point for `nerfstudio.dataparser_configs`; kept apart so nerfstudio's data manager
modules are not imported while nerfstudio is still loading them (circular import)."""

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from nerfreg_ns.nerf.dataparser import NerfregDataParserConfig

nerfreg_dataparser = DataParserSpecification(
    config=NerfregDataParserConfig(), description="nerfstudio dataset of one masked object, with its visual hull"
)
