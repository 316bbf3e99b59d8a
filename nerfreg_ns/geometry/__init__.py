"""Pure, typed geometry: rigid transforms, camera conventions, metrics. numpy only."""
